//! # engine: fedge's from-scratch ML engine (under construction)
#![deny(missing_docs)]
pub use conv_kernels as kernels;
