//! Fast kernels against their naive references, one module per family, every tier.

#[path = "../common/mod.rs"]
mod common;

mod conv2d;
mod dense;
mod elementwise;
mod errors;
mod gemm;
mod loss;
mod pool;
