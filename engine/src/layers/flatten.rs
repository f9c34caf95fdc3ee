//! [`Flatten`]: `[C, H, W]` to `[C*H*W]`. NCHW storage is already channel-major
//! (index `c*H*W + h*W + w`, PyTorch's order), so this layer moves no data.

/// A Flatten layer: a no-op on the contiguous NCHW buffer.
#[derive(Debug, Clone)]
pub(crate) struct Flatten;
