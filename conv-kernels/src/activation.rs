//! The activation a forward kernel (conv2d, dense) fuses into its epilogue. Its own module
//! because both kernel families take it and neither owns it; the element-wise ReLU kernels
//! themselves live in [`crate::elementwise`].

/// Epilogue fused into a forward kernel (conv2d, dense).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
}
