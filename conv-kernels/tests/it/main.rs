//! conv-kernels' integration tests, one binary: fast kernels against their naive references
//! (one module per family, every tier), backward kernels against finite differences
//! (`gradcheck`), and bit-identical results across rayon thread counts (`determinism`).

mod common;
mod conv2d;
mod dense;
mod determinism;
mod elementwise;
mod errors;
mod gemm;
mod gradcheck;
mod layouts;
mod loss;
mod pool;
