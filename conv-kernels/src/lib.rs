//! # conv-kernels: where all of fedge's compute happens
//!
//! Pure functions over `&[f32]` / `&mut [f32]` with explicit, checked shapes:
//!
//! * activations are NCHW, conv weights OIHW `(out, in, kh, kw)`, dense weights `[out, in]`;
//! * a geometry type ([`Conv2dGeometry`], [`Pool2dGeometry`], [`DenseGeometry`]) validates
//!   the shape once; every public kernel checks its buffers against it and returns a
//!   [`KernelError`] instead of touching memory it should not;
//! * kernels never allocate: callers own outputs and scratch buffers;
//! * each kernel family keeps a naive `reference` module beside it, the oracle of the tests.
//!
//! The crate knows nothing of layers or models; `engine` builds those on top.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod activation;
pub mod conv2d;
pub mod dense;
pub mod dispatch;
pub mod dropout;
mod error;
pub mod gemm;
pub mod geometry;
pub mod loss;
pub mod pool;
mod simd;
pub mod threads;

pub use activation::{relu_backward, relu_backward_inplace, relu_forward, relu_forward_inplace};
pub use conv2d::{
    Activation, ConvAlgo, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    conv2d_forward, conv2d_scratch_len, conv2d_scratch_slot_len,
};
pub use dense::{dense_backward_bias, dense_backward_input, dense_backward_weight, dense_forward};
pub use dispatch::{Isa, Kernels, active_isa, kernels};
pub use dropout::{dropout_backward, dropout_forward, dropout_forward_inplace};
pub use error::{KernelError, Result};
pub use geometry::{Conv2dGeometry, DenseGeometry, Padding, Pool2dGeometry};
pub use loss::{softmax_cross_entropy_backward, softmax_cross_entropy_forward, softmax_forward};
pub use pool::{maxpool2d_backward, maxpool2d_forward};
