//! Element-wise kernels over flat slices: ReLU forward and backward, dropout's mask product,
//! and the arithmetic the other kernels share (bias + activation epilogue, `dst += src`,
//! fixed-order sums).
//!
//! Each body is written once, generic over the crate-private `F32Vec` trait, and
//! instantiated per tier through the kernel list of [`crate::dispatch`]. Lengths are checked
//! by the public functions; the bodies only zip slices, so a mismatch shortens the loop
//! instead of reading out of bounds. [`reference`](mod@reference) holds the naive oracle.

mod arith;
mod dropout;
pub mod reference;
mod relu;

pub(crate) use arith::{add_assign_simd, bias_act_simd, sum_simd};
pub use dropout::{dropout_backward, dropout_forward, dropout_forward_inplace};
pub(crate) use dropout::{mul_inplace_simd, mul_simd};
pub use relu::{relu_backward, relu_backward_inplace, relu_forward, relu_forward_inplace};
pub(crate) use relu::{
    relu_backward_inplace_simd, relu_backward_simd, relu_forward_inplace_simd, relu_forward_simd,
};
