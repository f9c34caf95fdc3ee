//! Checked shapes of the kernels: [`Conv2dGeometry`], [`Pool2dGeometry`], [`DenseGeometry`].
//!
//! Every size is computed once, with overflow checks, when the geometry is
//! built; the kernels then trust it. Loop-local legend used across the crate:
//! `n` batch index, `c`/`ic` input channel, `oc` output channel, `ih, iw`
//! input row/column, `oh, ow` output row/column, `kh, kw` kernel row/column.

use crate::error::{KernelError, Result};

/// Spatial padding of a stride-1 convolution, as Keras names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// No padding: output is `in - k + 1`.
    Valid,
    /// Zero padding so that output = input size. For an even kernel the extra
    /// row/column of padding goes at the bottom/right (as TensorFlow does).
    Same,
}

/// Shape of a stride-1 2D convolution over an NCHW batch with OIHW weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// Batch size N.
    pub batch: usize,
    /// Input channels C.
    pub in_channels: usize,
    /// Input height H.
    pub in_h: usize,
    /// Input width W.
    pub in_w: usize,
    /// Output channels O.
    pub out_channels: usize,
    /// Kernel height KH.
    pub kernel_h: usize,
    /// Kernel width KW.
    pub kernel_w: usize,
    /// Zero rows added above the input.
    pub pad_top: usize,
    /// Zero columns added left of the input.
    pub pad_left: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

fn mul(op: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(KernelError::Overflow { op })
}

impl Conv2dGeometry {
    /// Validates and builds the geometry.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        in_channels: usize,
        in_h: usize,
        in_w: usize,
        out_channels: usize,
        kernel_h: usize,
        kernel_w: usize,
        padding: Padding,
    ) -> Result<Self> {
        const OP: &str = "conv2d";
        let dims = [
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel_h,
            kernel_w,
        ];
        if dims.contains(&0) {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!("zero dimension in {dims:?}"),
            });
        }
        let (pad_top, pad_left, out_h, out_w) = match padding {
            Padding::Valid => {
                if kernel_h > in_h || kernel_w > in_w {
                    return Err(KernelError::Geometry {
                        op: OP,
                        reason: format!(
                            "kernel {kernel_h}x{kernel_w} larger than input {in_h}x{in_w}"
                        ),
                    });
                }
                (0, 0, in_h - kernel_h + 1, in_w - kernel_w + 1)
            }
            Padding::Same => ((kernel_h - 1) / 2, (kernel_w - 1) / 2, in_h, in_w),
        };
        let g = Self {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel_h,
            kernel_w,
            pad_top,
            pad_left,
            out_h,
            out_w,
        };
        // Every buffer length must be representable; compute them once here.
        mul(OP, &[batch, in_channels, in_h, in_w])?;
        mul(OP, &[batch, out_channels, out_h, out_w])?;
        mul(OP, &[out_channels, in_channels, kernel_h, kernel_w])?;
        mul(OP, &[batch, in_channels, kernel_h, kernel_w, out_h, out_w])?;
        Ok(g)
    }

    /// Elements of the input, N*C*H*W.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_h * self.in_w
    }
    /// Elements of the weight, O*C*KH*KW.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels * self.kernel_h * self.kernel_w
    }
    /// Elements of the output, N*O*OH*OW.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_h * self.out_w
    }
    /// The same geometry with another batch size (already validated sizes scale linearly).
    pub fn with_batch(&self, batch: usize) -> Result<Self> {
        let p = if self.pad_top == 0 && self.out_h + self.kernel_h - 1 == self.in_h {
            Padding::Valid
        } else {
            Padding::Same
        };
        Self::new(
            batch,
            self.in_channels,
            self.in_h,
            self.in_w,
            self.out_channels,
            self.kernel_h,
            self.kernel_w,
            p,
        )
    }
}

/// Shape of a max-pooling over an NCHW batch (no padding; partial windows dropped, as Keras 'valid').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dGeometry {
    /// Batch size N.
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Window height.
    pub kernel_h: usize,
    /// Window width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Output height, `(in_h - kernel_h) / stride_h + 1`.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl Pool2dGeometry {
    /// Validates and builds the geometry.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        channels: usize,
        in_h: usize,
        in_w: usize,
        kernel_h: usize,
        kernel_w: usize,
        stride_h: usize,
        stride_w: usize,
    ) -> Result<Self> {
        const OP: &str = "maxpool2d";
        let dims = [
            batch, channels, in_h, in_w, kernel_h, kernel_w, stride_h, stride_w,
        ];
        if dims.contains(&0) {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!("zero dimension in {dims:?}"),
            });
        }
        if kernel_h > in_h || kernel_w > in_w {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!("window {kernel_h}x{kernel_w} larger than input {in_h}x{in_w}"),
            });
        }
        let out_h = (in_h - kernel_h) / stride_h + 1;
        let out_w = (in_w - kernel_w) / stride_w + 1;
        mul(OP, &[batch, channels, in_h, in_w])?;
        if in_h.checked_mul(in_w).is_none_or(|p| p > u32::MAX as usize) {
            return Err(KernelError::Geometry {
                op: OP,
                reason: "input plane too large for u32 argmax indices".into(),
            });
        }
        Ok(Self {
            batch,
            channels,
            in_h,
            in_w,
            kernel_h,
            kernel_w,
            stride_h,
            stride_w,
            out_h,
            out_w,
        })
    }

    /// The common 2x2 window with stride 2.
    pub fn two_by_two(batch: usize, channels: usize, in_h: usize, in_w: usize) -> Result<Self> {
        Self::new(batch, channels, in_h, in_w, 2, 2, 2, 2)
    }
    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.batch * self.channels * self.in_h * self.in_w
    }
    /// Elements of the output (and of the argmax buffer).
    pub fn output_len(&self) -> usize {
        self.batch * self.channels * self.out_h * self.out_w
    }
}

/// Shape of a fully connected layer: input [batch, in_features], weight [out_features, in_features].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DenseGeometry {
    /// Batch size N.
    pub batch: usize,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
}

impl DenseGeometry {
    /// Validates and builds the geometry.
    pub fn new(batch: usize, in_features: usize, out_features: usize) -> Result<Self> {
        const OP: &str = "dense";
        if batch == 0 || in_features == 0 || out_features == 0 {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!("zero dimension in [{batch}, {in_features}, {out_features}]"),
            });
        }
        mul(OP, &[batch, in_features])?;
        mul(OP, &[batch, out_features])?;
        mul(OP, &[out_features, in_features])?;
        Ok(Self {
            batch,
            in_features,
            out_features,
        })
    }
    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_features
    }
    /// Elements of the weight.
    pub fn weight_len(&self) -> usize {
        self.out_features * self.in_features
    }
    /// Elements of the output.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_features
    }
}
