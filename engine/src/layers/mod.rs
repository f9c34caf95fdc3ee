//! Layers: each file holds one layer's forward (train/eval) and backward over the
//! `conv-kernels` functions; [`Layer`] dispatches between them. Buffers belong to the model.

mod activation;
mod conv2d;
mod dense;
mod dropout;
mod flatten;
mod layer;
mod max_pool2d;

pub(crate) use activation::Relu;
pub(crate) use conv2d::Conv2d;
pub(crate) use dense::Dense;
pub(crate) use dropout::Dropout;
pub(crate) use flatten::Flatten;
pub(crate) use layer::{Layer, Plan, Step};
pub(crate) use max_pool2d::MaxPool2d;
